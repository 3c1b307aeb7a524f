"""Pure tensor geometry: rotations, SE(3), projection and its Jacobians, intrinsics, symmetry transforms.

Conventions (one page, used everywhere in iterpose): metres and radians; poses ``T_co [*, 4, 4]`` map object
coordinates to OpenCV camera coordinates (x right, y down, z forward); ``K [*, 3, 3]`` in pixels with the centre
of pixel (row i, col j) at (x=j, y=i); rotations act on column vectors; twists ``xi [*, 6] = (v, w)`` translation
first, applied on the left (``T_new = se3_exp(xi) @ T``). Every function accepts any leading batch dimensions
``*`` and follows its inputs' device and dtype. Imports only torch.
"""

from iterpose.geometry.camera import crop_K, look_at_T_co, validate_K, zoom_K
from iterpose.geometry.projection import (
    depth_jacobian_se3,
    point_jacobian_se3,
    project_points,
    projection_jacobian_se3,
)
from iterpose.geometry.rotations import (
    axis_angle_to_matrix,
    euler_to_matrix,
    hat,
    matrix_to_axis_angle,
    matrix_to_quaternion,
    matrix_to_rotation_6d,
    orthonormalize,
    quaternion_to_matrix,
    random_rotations,
    rotation_6d_to_matrix,
    rotation_angle,
)
from iterpose.geometry.se3 import make_T, se3_compose, se3_exp, se3_inverse, se3_log, transform_points
from iterpose.geometry.symmetry import bop_symmetry_transforms

__all__ = [
    # rotations
    "hat",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "quaternion_to_matrix",
    "matrix_to_quaternion",
    "rotation_6d_to_matrix",
    "matrix_to_rotation_6d",
    "euler_to_matrix",
    "rotation_angle",
    "orthonormalize",
    "random_rotations",
    # se3
    "make_T",
    "se3_compose",
    "se3_inverse",
    "se3_exp",
    "se3_log",
    "transform_points",
    # projection
    "project_points",
    "projection_jacobian_se3",
    "depth_jacobian_se3",
    "point_jacobian_se3",
    # camera
    "validate_K",
    "crop_K",
    "zoom_K",
    "look_at_T_co",
    # symmetry
    "bop_symmetry_transforms",
]
