"""Video specification: frames sampled at a rate, corrupt files named and refused, k-frame verdicts."""

import os

import cv2
import numpy as np
import pytest

from nsfw_mobilenet.io.video import CorruptVideo, extract_frames, video_score, video_verdict

FPS = 10
FRAMES = 20


def write_video(path, codec="mp4v", frames=FRAMES, colour=(0, 0, 255)):
    """A 2-second 64x48 clip whose brightness rises frame by frame (BGR `colour`)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), FPS, (64, 48))
    for i in range(frames):
        writer.write((np.array(colour, np.float32) * (0.5 + 0.5 * i / frames) * np.ones((48, 64, 3))).astype(np.uint8))
    writer.release()
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4")


def test_frames_are_sampled_at_the_requested_rate_with_their_times(mp4):
    sampled = extract_frames(mp4, fps=2.0, image_size=(32, 32))
    np.testing.assert_allclose(sampled.timestamps, [0.0, 0.5, 1.0, 1.5])
    assert sampled.frames.shape == (4, 32, 32, 3) and sampled.frames.dtype == np.uint8
    assert sampled.source == mp4 and sampled.note == ""


def test_frames_are_rgb_at_the_model_input_size(mp4):
    frame = extract_frames(mp4, fps=1.0, image_size=(24, 40)).frames[0]
    assert frame.shape == (24, 40, 3)
    red, green, blue = frame.reshape(-1, 3).mean(axis=0)
    assert red > 100 and green < 20 and blue < 20  # written as BGR red, returned as RGB red


def test_max_frames_caps_the_sample(mp4):
    assert len(extract_frames(mp4, fps=100.0, max_frames=5, image_size=(16, 16)).frames) == 5


def test_truncated_mp4_is_reported_as_corrupt_video_naming_the_file(mp4, tmp_path):
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])
    with pytest.raises(CorruptVideo, match="truncated.mp4: OpenCV cannot open it") as error:
        extract_frames(truncated)
    assert error.value.path == truncated


def test_random_bytes_named_mp4_are_reported_as_corrupt_video(tmp_path):
    fake = tmp_path / "noise.mp4"
    fake.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(CorruptVideo, match="noise.mp4"):
        extract_frames(fake)


@pytest.mark.parametrize("content, reason", [(b"", "zero bytes"), (None, "no such file")])
def test_empty_and_missing_videos_say_why(tmp_path, content, reason):
    path = tmp_path / "clip.mp4"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CorruptVideo, match=reason):
        extract_frames(path)


def test_truncated_avi_keeps_the_frames_before_the_cut_and_says_so(tmp_path):
    avi = write_video(tmp_path / "clip.avi", codec="MJPG")
    cut = tmp_path / "cut.avi"
    cut.write_bytes(avi.read_bytes()[: int(os.path.getsize(avi) * 0.9)])
    sampled = extract_frames(cut, fps=FPS, image_size=(16, 16))
    assert 0 < len(sampled.frames) < FRAMES
    assert "truncated" in sampled.note


def test_ffmpeg_lines_about_broken_videos_stay_off_stderr_and_the_environment_is_left_alone(mp4, tmp_path, capfd):
    truncated, cut = tmp_path / "truncated.mp4", tmp_path / "cut.avi"
    truncated.write_bytes(mp4.read_bytes()[: mp4.stat().st_size // 2])  # FFmpeg: "moov atom not found"
    avi = write_video(tmp_path / "clip.avi", codec="MJPG")
    cut.write_bytes(avi.read_bytes()[: int(os.path.getsize(avi) * 0.9)])  # FFmpeg: "sof: invalid len"
    environment = dict(os.environ)
    with pytest.raises(CorruptVideo):
        extract_frames(truncated)
    assert "truncated" in extract_frames(cut, fps=FPS, image_size=(16, 16)).note
    assert capfd.readouterr().err == ""
    assert dict(os.environ) == environment


def test_video_score_is_the_kth_highest_frame_score():
    scores = [0.1, 0.9, 0.2, 0.8, 0.3]
    assert video_score(scores, k=1) == 0.9
    assert video_score(scores, k=2) == 0.8
    assert video_score(scores, k=10) == 0.1  # k is capped at the number of frames


def test_one_unsafe_frame_is_not_enough_when_k_is_two():
    scores = [0.05, 0.95, 0.1]
    assert video_verdict(scores, threshold=0.5, k=1)
    assert not video_verdict(scores, threshold=0.5, k=2)


def test_video_verdict_refuses_an_empty_score_list():
    with pytest.raises(ValueError, match="at least one frame"):
        video_verdict([], threshold=0.5)
