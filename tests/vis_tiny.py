"""Tiny segmenter settings shared by the video instance segmentation tests."""
SWIN = dict(embed_dim=32, depths=(1, 1, 1, 1), num_heads=(1, 2, 4, 8))
HEAD = dict(hidden_dim=64, num_queries=10, num_heads=4, dim_feedforward=128, decoder_layers=2, encoder_layers=1,
            encoder_feedforward_dim=128, train_num_points=1024)
CLASSES = ["a", "b", "c"]


def tiny_model(predictor=None, classes=CLASSES):
    from stpn.vis.model import build_vis_model

    return build_vis_model(classes, predictor=predictor, swin_kwargs=SWIN, head_kwargs=HEAD)
