"""Set-up shared by the verbs that run torch: thread counts and the device check."""

from __future__ import annotations

__all__ = ["apply_threads", "check_device"]


def apply_threads(threads: int | None) -> None:
    """``--threads N``: torch's and numba's CPU threads (``None`` leaves their defaults)."""
    if threads is None:
        return
    from iterpose.errors import InvalidInputError  # noqa: PLC0415

    if threads < 1:
        raise InvalidInputError(f"--threads must be >= 1, got {threads}.")
    import numba  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch.set_num_threads(threads)
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def check_device(device: str) -> None:
    """``--device cuda`` on a machine without CUDA is one clear error."""
    if device == "cuda":
        import torch  # noqa: PLC0415

        if not torch.cuda.is_available():
            from iterpose.errors import InvalidInputError  # noqa: PLC0415

            raise InvalidInputError("--device cuda: CUDA is not available on this machine; use --device cpu.")
