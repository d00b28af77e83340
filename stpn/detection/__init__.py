"""Video object detection: torchvision Faster R-CNN on a prompt-aware backbone + FPN, optionally with
SELSA's RoI aggregation over support frames (:mod:`stpn.detection.selsa`)."""
