"""bogv: reverse image search over a pretrained CNN and Milvus."""

__version__ = "0.1.0"
