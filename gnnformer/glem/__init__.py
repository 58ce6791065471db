"""GLEM (Zhao et al., "Learning on Large-scale Text-attributed Graphs via Variational Inference",
ICLR 2023): a language model and a GNN that teach each other on a text-attributed graph.

settings.py (GLEMConfig), pseudo.py (which nodes get pseudo-labels, the mixed loss), lm_stage.py
(tokenise, train, infer, cache), gnn_stage.py, em.py (the schedule), run.py (seeds, metrics,
checkpoints), predict.py (text-only scoring with GLEM-LM). Submodules are imported on use, so the
command line starts without torch.
"""
