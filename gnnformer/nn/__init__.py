"""Building blocks: attention over a graph, the Transformer layer as a GNN layer, local MPNNs,
the GPS fusion layer, CLGT's typed and weighted edge attention, positional/structural encodings, Gradformer's distance decay and DIFFormer's
diffusion attention."""
from .attention import GraphMultiheadAttention
from .clgt import CLGTConv
from .decay import ShortestPathDecay
from .difformer import DIFFormerConv, gcn_propagate
from .droppath import DropPath
from .encodings import (
    LapPE,
    LapPEEncoder,
    RWSE,
    RWSEEncoder,
    ShortestPathDistance,
    compute_lap_pe,
    compute_rwse,
    compute_spd,
    spd_to_dense,
)
from .fusion import GPSLayer
from .gatedgcn import GatedGCNConv
from .local import LOCAL_CONVS, build_local_conv
from .mol_gcn import MolGCNConv, MolSAGEConv
from .mol_gin import MolGINConv
from .transformer_layer import GraphTransformerLayer, make_norm

__all__ = [
    "GraphMultiheadAttention",
    "CLGTConv",
    "DIFFormerConv",
    "gcn_propagate",
    "GraphTransformerLayer",
    "make_norm",
    "build_local_conv",
    "LOCAL_CONVS",
    "GPSLayer",
    "GatedGCNConv",
    "MolGINConv",
    "MolGCNConv",
    "MolSAGEConv",
    "DropPath",
    "ShortestPathDecay",
    "LapPE",
    "RWSE",
    "ShortestPathDistance",
    "spd_to_dense",
    "compute_lap_pe",
    "compute_rwse",
    "compute_spd",
    "LapPEEncoder",
    "RWSEEncoder",
]
