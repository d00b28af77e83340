"""Looking inside trained detectors: EigenCAM maps of chosen frames (``stpn explain``) and
t-SNE plots with silhouette scores of ground-truth RoI features by motion speed
(``stpn tsne``), the paper's qualitative analysis (Fig. 6, Fig. 8; supplementary §3–4).

The CAM comes from the ``grad-cam`` package and the embedding and scores from scikit-learn;
this package only feeds them the detector's features."""
