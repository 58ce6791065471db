"""Few-shot molecular property prediction: FS-GNNCvTR (a GIN read by a convolutional Transformer,
meta-trained with MAML) and its baselines on the Tox21 and SIDER few-shot tasks.

    gnnformer fewshot --dataset tox21 --shots 5 --config configs/fewshot/tox21_5shot.yaml
    gnnformer predict --checkpoint runs/.../checkpoints/fs-gnncvtr-attrmask.pt --support support.csv --input query.smi

``featurize`` (Hu et al. atom/bond indices, one PyG ``Data`` per molecule), ``tasks`` (task
files, episodes), ``model`` (GIN encoder of ``gnnformer.nn.MolGINConv`` layers, convolutional
Transformer head), ``meta`` (torch.func MAML), ``baseline`` (multi-task GIN + fine-tuning),
``pretrain`` (attribute masking), ``settings`` (the run's settings), ``evaluation`` (support
draws, ROC-AUC), ``run`` (the protocol and its outputs), ``predict`` (adapting a checkpoint to a
new support set).
"""
from .model import FEWSHOT_MODELS, create_fewshot_model, list_fewshot_models

__all__ = ["FEWSHOT_MODELS", "create_fewshot_model", "list_fewshot_models"]
