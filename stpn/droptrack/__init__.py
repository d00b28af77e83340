"""DropTrack (Wu et al., CVPR 2023): an OSTrack-style one-stream ViT tracker, initialised from a
DropMAE / TwinMAE pre-training (:mod:`stpn.pretraining`), with optional STPN prompts."""
