"""Masked video pre-training on frame pairs: DropMAE (Wu et al., CVPR 2023) and its TwinMAE
baseline. ``asad`` is the adaptive spatial attention dropout, ``decoder`` the decoder blocks that
run it, ``model`` the two-frame masked autoencoder, ``export`` the encoder in timm's layout,
``pairs`` / ``train`` the data and the training run, ``cli`` the ``stpn pretrain`` command."""
