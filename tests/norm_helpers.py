"""Test helper: give norms non-trivial parameters so equality tests can tell layers apart."""
import torch


def randomise_norms(model):
    """Non-trivial LayerNorm / BatchNorm affine parameters and BatchNorm running statistics."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (torch.nn.LayerNorm, torch.nn.BatchNorm2d)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.2)
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.3, 2.0)
