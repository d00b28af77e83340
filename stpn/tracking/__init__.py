"""Visual object tracking: a MixFormer-style tracker with optional STPN prompts
(:func:`stpn.tracking.build.build_mixformer`)."""
