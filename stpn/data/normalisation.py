"""The ImageNet mean / std (RGB, for images in [0, 1]) that every backbone here was trained
with: one place for detection, tracking and pre-training."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
