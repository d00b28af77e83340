"""Video instance segmentation: a MinVIS-style per-frame Mask2Former on the prompt-aware Swin
(docs/vis.md)."""
