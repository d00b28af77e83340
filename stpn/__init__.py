"""stpn: Spatio-Temporal Prompting Network for robust video feature extraction."""
__version__ = "0.1.0"
