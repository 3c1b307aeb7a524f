"""Reading and encoding the image files of a BOP dataset (RGB, gray, 16-bit depth, masks) with OpenCV.

Everything here is uint8/uint16 ``[H, W(, C)]`` numpy in file order, RGB channel order (OpenCV's BGR is
swapped here and nowhere else). Conversion to iterpose tensors (float32 ``[B, 3, H, W]`` in 0..1) happens later,
in the torch datasets.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from iterpose.errors import DataFormatError, InvalidInputError, MissingFileError, ShapeError

__all__ = ["read_rgb_uint8", "read_uint16", "read_mask", "encode_image"]


def _read_unchanged(path: Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{what} not found: {path}")
    data = np.fromfile(str(path), dtype=np.uint8)
    im = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if im is None:
        raise DataFormatError(f"{what} {path} could not be decoded as an image (corrupt or unsupported format)")
    return im


def read_rgb_uint8(path, what: str = "RGB image") -> np.ndarray:
    """Read a colour or gray image as RGB.

    Args:
        path: PNG, JPEG or TIFF file. Gray images are replicated to 3 channels, an alpha channel is dropped,
            16-bit images are scaled to 8 bits (``round(v / 257)``).
        what: what the file is, for error messages.

    Returns:
        uint8 ``[H, W, 3]``, RGB order.

    Raises:
        MissingFileError: the file does not exist. DataFormatError: it cannot be decoded.
    """
    im = _read_unchanged(Path(path), what)
    if im.dtype == np.uint16:
        im = np.round(im.astype(np.float64) / 257.0).astype(np.uint8)
    elif im.dtype != np.uint8:
        raise DataFormatError(f"{what} {path}: unsupported pixel type {im.dtype}, expected 8- or 16-bit")
    if im.ndim == 2:
        return np.repeat(im[:, :, None], 3, axis=2)
    if im.shape[2] == 4:
        return cv2.cvtColor(im, cv2.COLOR_BGRA2RGB)
    if im.shape[2] == 3:
        return cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
    raise DataFormatError(f"{what} {path}: {im.shape[2]} channels, expected 1, 3 or 4")


def read_uint16(path, what: str = "depth image") -> np.ndarray:
    """Read a single-channel image (BOP depth: 16-bit PNG/TIFF) without any scaling.

    Returns:
        ``[H, W]`` array of the stored integers (uint16, or uint8 for an 8-bit file).

    Raises:
        MissingFileError: the file does not exist. DataFormatError: not decodable or not single-channel.
    """
    im = _read_unchanged(Path(path), what)
    if im.ndim != 2:
        raise DataFormatError(f"{what} {path}: expected a single-channel image, got shape {im.shape}")
    return im


def read_mask(path, what: str = "mask") -> np.ndarray:
    """Read a BOP mask (PNG, 0 = background, 255 = object; any value > 0 counts as object).

    Returns:
        bool ``[H, W]``.
    """
    im = _read_unchanged(Path(path), what)
    if im.ndim == 3:
        im = im.max(axis=2)
    return im > 0


def encode_image(ext: str, im: np.ndarray, jpg_quality: int = 95) -> bytes:
    """Encode an image for writing.

    Args:
        ext: ``".png"``, ``".jpg"``/``".jpeg"`` or ``".tif"``/``".tiff"`` (case-insensitive).
        im: uint8 ``[H, W]`` or ``[H, W, 3]`` (RGB order), or uint16 ``[H, W]`` (PNG/TIFF only).
        jpg_quality: JPEG quality 0..100 (used for JPEG only).

    Returns:
        The encoded file content.

    Raises:
        InvalidInputError: unknown extension or pixel type. ShapeError: not ``[H, W]`` / ``[H, W, 3]``.
    """
    ext = ext.lower()
    if ext not in (".png", ".jpg", ".jpeg", ".tif", ".tiff"):
        raise InvalidInputError(f"encode_image: unsupported extension {ext!r}; use .png, .jpg or .tif")
    im = np.asarray(im)
    if im.ndim not in (2, 3) or (im.ndim == 3 and im.shape[2] != 3) or im.size == 0:
        raise ShapeError(f"encode_image: image must be [H, W] or [H, W, 3] and non-empty, got shape {im.shape}")
    if im.dtype not in (np.uint8, np.uint16):
        raise InvalidInputError(f"encode_image: pixel type must be uint8 or uint16, got {im.dtype}")
    if im.dtype == np.uint16 and ext in (".jpg", ".jpeg"):
        raise InvalidInputError("encode_image: 16-bit images cannot be written as JPEG; use .png")
    if im.ndim == 3:
        im = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpg_quality)] if ext in (".jpg", ".jpeg") else []
    if ext == ".png":
        params = [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, buf = cv2.imencode(ext, np.ascontiguousarray(im), params)
    if not ok:
        raise InvalidInputError(f"encode_image: OpenCV could not encode a {im.dtype} {im.shape} image as {ext}")
    return buf.tobytes()
