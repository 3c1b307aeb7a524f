"""Pure tensor geometry: rotations, SE(3), projection and its Jacobians, intrinsics, symmetry transforms.

Conventions (one page, used everywhere in iterpose): metres and radians; poses ``T_co [*, 4, 4]`` map object
coordinates to OpenCV camera coordinates (x right, y down, z forward); ``K [*, 3, 3]`` in pixels with the centre
of pixel (row i, col j) at (x=j, y=i); rotations act on column vectors; twists ``xi [*, 6] = (v, w)`` translation
first, applied on the left (``T_new = se3_exp(xi) @ T``). Every function accepts any leading batch dimensions
``*`` and follows its inputs' device and dtype. Imports only torch (and NumPy for the BOP symmetry set).

The names below are imported on first use (PEP 562), so that ``import iterpose.geometry.symmetry`` (BOP evaluation,
NumPy only) does not import torch.
"""

from __future__ import annotations

from iterpose._lazy import lazy_exports


#: public name -> submodule that defines it
_EXPORTS = {
    # rotations
    "hat": "rotations",
    "axis_angle_to_matrix": "rotations",
    "matrix_to_axis_angle": "rotations",
    "quaternion_to_matrix": "rotations",
    "matrix_to_quaternion": "rotations",
    "rotation_6d_to_matrix": "rotations",
    "matrix_to_rotation_6d": "rotations",
    "euler_to_matrix": "rotations",
    "rotation_angle": "rotations",
    "orthonormalize": "rotations",
    "random_rotations": "rotations",
    # se3
    "make_T": "se3",
    "se3_compose": "se3",
    "se3_inverse": "se3",
    "se3_exp": "se3",
    "se3_log": "se3",
    "transform_points": "se3",
    # projection
    "project_points": "projection",
    "projection_jacobian_se3": "projection",
    "depth_jacobian_se3": "projection",
    "point_jacobian_se3": "projection",
    # camera
    "validate_K": "camera",
    "crop_K": "camera",
    "zoom_K": "camera",
    "look_at_T_co": "camera",
    "bop_to_opencv_K": "camera",
    "BOP_PIXEL_CENTRE_OFFSET_PX": "camera",
    "principal_point_in_image": "camera",
    # symmetry
    "bop_symmetry_transforms": "symmetry",
    "bop_symmetry_transforms_np": "symmetry",
}

__all__ = list(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
