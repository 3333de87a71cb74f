"""Specification of §5.1: table 5.1's counting rules, the video-frames test set and per-video verdicts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from nsfw_mobilenet.core.configs import thesis_reference
from nsfw_mobilenet.core.taxonomy import BINARY, FIVE_CLASS
from nsfw_mobilenet.evaluation.evaluate import count_wrong
from nsfw_mobilenet.io.standin import make_standin
from nsfw_mobilenet.io.video import CorruptVideo
from nsfw_mobilenet.studies import cross_dataset
from nsfw_mobilenet.studies.cross_dataset import (
    TEST_SETS,
    THESIS_COLUMNS,
    frames_test_set,
    read_video_labels,
    table_5_1,
    unsafe_frame_numbers,
    video_verdicts,
)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_standin(tmp_path_factory.mktemp("standin"), images_per_class=4, progress=False).root / "videos"


def test_two_class_model_on_five_class_test_set_is_wrong_only_across_safety():
    true = ["drawings", "neutral", "hentai", "porn", "sexy", "sexy"]
    predicted = ["normal", "sexual", "sexual", "normal", "sexual", "normal"]
    assert count_wrong(true, FIVE_CLASS, predicted, BINARY) == 3  # neutral→sexual, porn→normal, sexy→normal


def test_five_class_model_on_two_class_test_set_counts_sexy_as_sexual():
    true = ["normal", "normal", "sexual", "sexual", "sexual"]
    predicted = ["drawings", "sexy", "sexy", "hentai", "neutral"]
    assert count_wrong(true, BINARY, predicted, FIVE_CLASS) == 2  # normal→sexy, sexual→neutral


def test_five_class_model_on_five_class_test_set_follows_listing_4_8():
    true = ["drawings", "hentai", "sexy"]
    predicted = ["neutral", "porn", "porn"]
    assert count_wrong(true, FIVE_CLASS, predicted, FIVE_CLASS) == 1  # only the sexy image counts


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        count_wrong(["normal", "sexual"], BINARY, ["normal"], BINARY)


def test_table_5_1_puts_each_count_beside_the_thesis_number():
    thesis = thesis_reference()["tables"]["5.1"]
    wrong = {test_set: {column: i for i, column in enumerate(THESIS_COLUMNS.values())} for test_set in TEST_SETS}
    table = table_5_1(wrong, dict.fromkeys(TEST_SETS, 10))
    assert list(table.index) == list(TEST_SETS)
    for column in THESIS_COLUMNS.values():
        assert table.loc[TEST_SETS[2], f"{column} [thesis]"] == thesis["rows"][TEST_SETS[2]][column]
    assert table.loc[TEST_SETS[0], "v3_small_5_classes_dataset_3 [here]"] == 3


def test_unsafe_frame_ranges_are_read_inclusively():
    assert unsafe_frame_numbers("10-12;20-20") == {10, 11, 12, 20}
    assert unsafe_frame_numbers("") == set()


def test_frames_are_grouped_by_video_and_labelled_by_the_unsafe_ranges(videos):
    frames = frames_test_set(videos, fps=2.0, image_size=(32, 32), progress=False)
    rows = {row["file"]: row for row in read_video_labels(videos)}
    assert frames.images.shape[1:] == (32, 32, 3) and frames.taxonomy is BINARY
    assert set(frames.groups) == set(rows)
    by_video = {video: [lab for g, lab in zip(frames.groups, frames.labels) if g == video] for video in rows}
    assert by_video["safe_0.mp4"] == ["normal"] * 6  # 30 frames at 10 fps, sampled at 2 fps
    assert by_video["unsafe_0.mp4"] == ["sexual"] * 6
    assert by_video["mixed_0.mp4"] == ["normal", "normal", "sexual", "sexual", "normal", "normal"]  # frames 10-19


def test_video_verdict_flags_exactly_the_clips_with_unsafe_frames_when_frames_are_scored_right(videos):
    frames = frames_test_set(videos, fps=2.0, image_size=(32, 32), progress=False)
    truth = np.array([lab == "sexual" for lab in frames.labels], dtype=float)
    verdicts = video_verdicts(frames, truth, threshold=0.5, k=2, video_dir=videos)
    assert verdicts["correct"].all()
    assert set(verdicts.index[verdicts["verdict"] == "unsafe"]) == {"unsafe_0.mp4", "unsafe_1.mp4", "mixed_0.mp4",
                                                                   "mixed_1.mp4"}
    one_false_alarm = truth.copy()
    one_false_alarm[frames.groups.index("safe_0.mp4")] = 0.9
    tolerant = video_verdicts(frames, one_false_alarm, threshold=0.5, k=2)
    assert tolerant.loc["safe_0.mp4", "verdict"] == "safe"  # k=2 ignores a single flagged frame


def test_a_corrupt_video_is_skipped_and_reported_by_name(videos, tmp_path):
    shutil.copy(videos / "safe_0.mp4", tmp_path / "safe_0.mp4")
    (tmp_path / "broken.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (tmp_path / "labels.csv").write_text("file,label,frames,fps,unsafe_frames\n"
                                         "safe_0.mp4,safe,30,10,\nbroken.mp4,unsafe,30,10,0-29\n")
    frames = frames_test_set(tmp_path, fps=1.0, image_size=(16, 16), progress=False)
    assert set(frames.groups) == {"safe_0.mp4"}
    assert len(frames.skipped) == 1 and "broken.mp4" in frames.skipped[0] and "(skipped)" in frames.skipped[0]


def test_a_folder_without_any_decodable_video_raises_corrupt_video(tmp_path):
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "labels.csv").write_text("file,label,frames,fps,unsafe_frames\nbroken.mp4,safe,30,10,\n")
    with pytest.raises(CorruptVideo, match="no clip listed in labels.csv could be decoded.*broken.mp4"):
        frames_test_set(tmp_path, progress=False)


def test_a_video_folder_without_labels_csv_says_what_it_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.csv: missing"):
        frames_test_set(tmp_path, progress=False)


def synthetic_experiment() -> dict:
    """A table 5.1 result: two models, each with verdicts on two clips."""
    verdicts = {"safe_0.mp4": {"frames": 4, "verdict": "safe"}, "unsafe_0.mp4": {"frames": 4, "verdict": "unsafe"}}
    wrong = {test_set: {column: 1 for column in THESIS_COLUMNS.values()} for test_set in TEST_SETS}
    return {"wrong": wrong, "data": {"test_images": dict.fromkeys(TEST_SETS, 10)},
            "models": {column: {"video_verdicts": verdicts} for column in list(THESIS_COLUMNS.values())[:2]}}


def test_video_verdict_table_has_one_row_per_model_and_clip():
    table = cross_dataset.video_verdict_table(synthetic_experiment())
    assert table.index.names == ["model", "video"]
    assert len(table) == 4 and table.loc[(THESIS_COLUMNS["two_classes"], "unsafe_0.mp4"), "verdict"] == "unsafe"


def test_table_5_1_of_a_result_reads_its_wrong_counts_and_test_set_sizes():
    table = cross_dataset.table_5_1_of(synthetic_experiment())
    assert table.index.tolist() == list(thesis_reference()["tables"]["5.1"]["rows"])
    assert (table["images here"] == 10).all() and (table[f"{THESIS_COLUMNS['two_classes']} [here]"] == 1).all()


def test_committed_table_5_1_results_each_have_a_note_and_wrong_counts():
    committed = cross_dataset.committed_table_5_1_runs()
    assert committed and all(name.startswith(cross_dataset.TABLE_5_1_RESULTS) for name in committed)
    assert all({"note", "wrong"} <= set(result) for result in committed.values())
