"""Video object detection: torchvision Faster R-CNN on a prompt-aware backbone + FPN."""
