"""Video frames with their timestamps, read with PyAV (its wheel ships FFmpeg's libraries: mp4,
avi, mov, mkv and the rest, no system ffmpeg needed).

One frame is decoded at a time and handed on as a grayscale array, so memory stays flat whatever
the video's length. Timestamps are the frames' own presentation times (exact for variable frame
rates, which phone videos have), in seconds from the start.
"""
from typing import Iterator, Tuple

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")


def is_video(path: str) -> bool:
    return str(path).lower().endswith(VIDEO_SUFFIXES)


class VideoError(ValueError):
    """The file cannot be read as a video, or ends before the frames its header declares."""


# Frames (and frame times) a complete video may fall short of its declared count and duration by
# (FFmpeg drops a frame or two an edit list or a B-frame reorder leaves out); above this and 1%, the
# file may have been cut short (_cut_short).
CUT_SHORT_TOLERANCE = 2


def frame_count(path: str) -> int:
    """The number of frames the container declares, for a progress bar: 0 when it does not say (mkv,
    webm) or cannot be opened, or has no video stream; read_frames then says why, on the input's own
    line."""
    import av  # pylint: disable=import-outside-toplevel

    try:
        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames or 0) if container.streams.video else 0
    except (av.FFmpegError, OSError, ValueError):
        return 0


def read_frames(path: str, every: int = 1) -> Iterator[Tuple[int, float, np.ndarray]]:
    """(frame index, seconds, uint8 gray [H, W]) of every `every`-th frame, in order; VideoError when
    the file is no video or holds no frame at all, so a caller never takes it for an empty clip, and
    after the last frame when it ends well before the frame count its header declares."""
    import av  # pylint: disable=import-outside-toplevel

    if every < 1:
        raise ValueError(f"every={every}: must be >= 1")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as error:
        raise VideoError(f"{path}: not a readable video ({error})") from error
    with container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        index, seconds = -1, 0.0
        try:
            for index, frame in enumerate(container.decode(stream)):
                seconds = float(frame.pts * stream.time_base) if frame.pts is not None else float(frame.time or 0.0)
                if index % every:
                    continue
                yield index, seconds, frame.to_ndarray(format="gray")
        except av.FFmpegError as error:
            raise VideoError(f"{path}: decoding failed at frame {index + 1} ({error})") from error
        if index < 0:
            raise VideoError(f"{path}: the video stream holds no frame")
        short = _cut_short(stream, index + 1, seconds)
        if short:
            raise VideoError(f"{path}: the video ends after frame {index + 1} of the {stream.frames} its header "
                             f"declares, {short}: cut short (an interrupted download or copy?)")


def _cut_short(stream, decoded: int, last_frame_time: float) -> str:
    """How a video that decoded `decoded` frames, the last at `last_frame_time` s, falls short of what
    its header declares ('' when it does not). FFmpeg ends quietly where a cut avi (or a faststart
    mp4 cut between packets) ends. Both the frame count and the duration must fall short: complete
    files declare frames they never show (a trimmed mp4's edit list, an avi's empty chunks for
    dropped frames), but not time."""
    declared = int(stream.frames or 0)
    if declared - decoded <= max(CUT_SHORT_TOLERANCE, declared // 100) or not stream.duration:
        return ""
    duration = float(stream.duration * stream.time_base)
    frame_time = 1 / float(stream.average_rate) if stream.average_rate else 0.0
    shown = last_frame_time + frame_time
    if duration - shown <= max(CUT_SHORT_TOLERANCE * frame_time, duration / 100):
        return ""
    return f"at {shown:.2f} s of {duration:.2f} s"


def write_video(path: str, frames, fps: int = 25) -> str:
    """Writes uint8 gray frames (even width and height) as H.264 in an mp4/mov, or MPEG-4 in an avi:
    test fixtures and demo clips."""
    import av  # pylint: disable=import-outside-toplevel

    frames = iter(frames)
    first = next(frames)
    codec = "mpeg4" if str(path).lower().endswith(".avi") else "libx264"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = first.shape
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        for gray in [first, *frames]:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(gray), format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)
