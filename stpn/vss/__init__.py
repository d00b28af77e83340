"""Video semantic segmentation: PSPNet18 with the Sparse Temporal Transformer (STT, Li et al.,
ACM MM 2021), mIoU and temporal consistency, the built-in benchmark as semantic segmentation
(docs/vss.md)."""
