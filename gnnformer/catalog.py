"""Names and one-line summaries of every model and dataset, as plain data for `gnnformer list`.

The registries hold the same entries, but filling them means importing torch and PyG (seconds);
this table lets the CLI list them at once. ``tests/test_cli_defects.py`` compares it with the
registries and prints the up-to-date table when they differ.
"""
from __future__ import annotations

MODELS = (
    ("clgt", "CLGT (Peng et al. 2023): graph transformer over typed, weighted edges with an edge-feature pipeline"),
    ("difformer-a", "DIFFormer-a (Wu et al. 2023): sigmoid all-pair diffusion attention (quadratic) + GCN propagation"),
    ("difformer-s", "DIFFormer-s (Wu et al. 2023): linear all-pair diffusion attention + GCN propagation"),
    ("gat", "GAT baseline (Velickovic et al. 2018): PyG GATConv layers with residuals"),
    ("gcn", "GCN baseline (Kipf & Welling 2017): PyG GCNConv layers with residuals"),
    ("gin", "GIN baseline (Xu et al. 2019): PyG GINConv layers with residuals"),
    ("gps", "GraphGPS fused layers: MPNN + attention + FFN, LapPE/RWSE (Rampasek et al. 2022)"),
    ("gradformer", "Gradformer: GPS with attention decaying by hop distance (Liu et al. 2024)"),
    ("mlp", "MLP baseline: the same residual stack with a per-node Linear instead of a convolution (ignores edges)"),
    ("rgcn", "R-GCN baseline (Schlichtkrull et al. 2018): PyG RGCNConv, one weight per edge type, with residuals"),
    ("sage", "GraphSAGE baseline (Hamilton et al. 2017): PyG SAGEConv layers (mean aggregation) with residuals"),
    ("sgformer", "SGFormer (Wu et al. 2023), PyG's implementation: one linear attention layer + a GCN branch"),
    ("transformer", "Plain Transformer = attention GNN on the complete graph (Vaswani et al. 2017)"),
)

FEWSHOT_MODELS = (
    ("fs-gin", "The same GIN encoder with a linear head (FS-GNNCvTR's ablation)"),
    ("fs-gnncvtr", "FS-GNNCvTR: GIN graph embedding read by a convolutional Transformer"),
)

DATASETS = (
    ("CLUSTER", "SBM node classification regenerated from the CLUSTER recipe, 10000/1000/1000 graphs (published sizes)"),
    ("CLUSTER-mini", "SBM node classification regenerated from the CLUSTER recipe, 1000/200/200 graphs (reduced sizes for CPU runs)"),
    ("CiteSeer", "Planetoid: 3327 papers, 3703 bag-of-words features, 6 topics (node classification)"),
    ("Cora", "Planetoid: 2708 papers, 1433 bag-of-words features, 7 topics (node classification)"),
    ("IMDB-BINARY", "TU: 1000 movie ego-networks, no node features: one-hot degree (2 classes)"),
    ("MUTAG", "TU: 188 nitro compounds, mutagenic or not (graph classification, 2 classes)"),
    ("NCI1", "TU: 4110 compounds screened against lung cancer (graph classification, 2 classes)"),
    ("PROTEINS", "TU: 1113 protein structures, enzyme or not (graph classification, 2 classes)"),
    ("PubMed", "Planetoid: 19717 diabetes papers, 500 TF-IDF features, 3 classes (node classification)"),
    ("SBM-large", "one synthetic SBM graph (default 100,000 nodes, option num_nodes), 10 classes, ~11 neighbours per node, 128 features (large-graph node tasks)"),
    ("SIDER", "MoleculeNet: 1427 marketed drugs, 27 side-effect classes (multitask binary)"),
    ("Tox21", "MoleculeNet: 7831 compounds, 12 toxicity assays (multitask binary, labels missing)"),
    ("chickenpox", "Hungary chickenpox: 521 weeks x 20 counties, static graph; next-week node regression (option lags, default 4)"),
    ("digits", "scikit-learn digits: 1797 8x8 images, 10 classes, one graph with no edges (node classification without an input graph)"),
    ("digits-knn", "digits with a symmetric feature kNN graph (option k, default 10) for GNN baselines"),
    ("england-covid", "England COVID-19: 61 days x 129 regions, daily mobility graphs; next-day node regression (option lags, default 8)"),
)

TEXT_DATASETS = (
    ("citeseer-tag", "CiteSeer with raw texts: 3186 papers (title + abstract), 6 classes, 4225 undirected citation links (TAG/CiteSeer-Orig)"),
)

#: ``gnnformer list`` sections: heading and entries.
SECTIONS = (("Models", MODELS), ("Few-shot models (gnnformer fewshot)", FEWSHOT_MODELS), ("Datasets", DATASETS),
            ("Text-attributed graphs (gnnformer glem)", TEXT_DATASETS))
