"""Pure tensor geometry: rotations, SE(3), projection and its Jacobians, intrinsics, symmetry transforms.

Conventions (one page, used everywhere in iterpose): metres and radians; poses ``T_co [*, 4, 4]`` map object
coordinates to OpenCV camera coordinates (x right, y down, z forward); ``K [*, 3, 3]`` in pixels with the centre
of pixel (row i, col j) at (x=j, y=i); rotations act on column vectors. Every function accepts any leading batch
dimensions ``*`` and follows its inputs' device and dtype. Imports only torch.
"""

from iterpose.geometry.symmetry import bop_symmetry_transforms

__all__ = ["bop_symmetry_transforms"]
