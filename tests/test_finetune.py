"""Specifications for the review loop end to end on the stand-in: scan, a person's verdicts, `review`, `finetune`,
and a model that `scan` takes like any trained one (thesis §6.2)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from image_corpus import noise
from random_weights import random_init

from nsfw_mobilenet import cli
from nsfw_mobilenet.app.scan import Detector
from nsfw_mobilenet.core.configs import final_config
from nsfw_mobilenet.core.exit_codes import EXIT_USAGE
from nsfw_mobilenet.evaluation.run_results import load_result
from nsfw_mobilenet.io import feedback, standin
from nsfw_mobilenet.io.run_data import run_files
from nsfw_mobilenet.training import train
from nsfw_mobilenet.training.feedback import feedback_items, replay_items

VERDICT_OF_FOLDER = {"normal": "safe", "sexual": "unsafe"}  # the reviewer knows the truth


def with_verdicts(scan_file: Path, count: int) -> Path:
    """The scan's CSV with a verdict filled in for its first `count` image rows, as a person would."""
    with open(scan_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows[:count]:
        row["verdict"] = VERDICT_OF_FOLDER[Path(row["path"]).parent.name]
    reviewed = scan_file.with_name("reviewed.csv")
    with open(reviewed, "w", newline="") as handle:
        writer = csv.DictWriter(handle, [*rows[0].keys(), "verdict"])
        writer.writeheader()
        writer.writerows(rows)
    return reviewed


@pytest.mark.slow
def test_scan_review_finetune_gives_a_model_scan_takes_and_records_what_it_learned_from(tmp_path, capsys):
    data = standin.ensure_standin() / "binary"
    trained = train.run_experiment(random_init(final_config().with_overrides(epochs=1)), data, tmp_path / "runs",
                                   smoke=True, checkpoint_dir=tmp_path / "checkpoints", verbose=0)
    model = trained.path.with_suffix(".keras")
    scan_file = tmp_path / "scan.csv"
    assert cli.main(["scan", str(data / "test"), "--model", str(model), "--output", str(scan_file), "--quiet"]) in (0, 1)
    feedback_file = tmp_path / "feedback.jsonl"
    assert cli.main(["review", str(with_verdicts(scan_file, 6)), "--feedback", str(feedback_file)]) == 0
    assert cli.main(["finetune", "--model", str(model), "--feedback", str(feedback_file), "--data", str(data),
                     "--epochs", "1", "--replay", "2", "--cache-dir", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "6 reviewed images" in printed and "agreement with the reviewers: " in printed
    tuned = model.with_name(f"{model.stem}_feedback.keras")
    result = load_result(tuned.with_suffix(".json"))
    assert result.feedback["reviews"] == 6 and result.feedback["replay_images"] == 12
    assert len(result.history["loss"]) == 1 and result.test.images == len(run_files(data)["test"])  # all of test/
    assert Detector(tuned).classify(next((data / "test" / "sexual").iterdir())).label in ("normal", "sexual")


def test_feedback_labels_the_reviewed_images_with_the_models_own_class_names():
    items = [feedback.Feedback("/a.jpg", "h1", "unsafe"), feedback.Feedback("/b.jpg", "h2", "safe")]
    assert [i.label for i in feedback_items(items, ["roses", "tulips"])] == ["tulips", "roses"]
    assert [i.label for i in feedback_items(items, ["sexual", "normal"])] == ["sexual", "normal"]
    with pytest.raises(ValueError, match="two-class"):
        feedback_items(items, ["drawings", "hentai", "neutral", "porn", "sexy"])


def test_finetune_with_an_empty_feedback_set_is_a_one_line_error(tmp_path, capsys):
    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    (tmp_path / "m.json").write_text("{}")
    code = cli.main(["finetune", "--model", str(model), "--feedback", str(tmp_path / "none.jsonl"), "--data",
                     str(tmp_path)])
    assert code == EXIT_USAGE and capsys.readouterr().err.startswith("nsfw-mobilenet finetune: error: ")


def test_replay_draws_an_even_share_of_each_class_so_a_rare_class_keeps_its_place(tmp_path):
    for label, count in (("everything_else", 40), ("tulips", 5)):
        (tmp_path / "train" / label).mkdir(parents=True)
        for i in range(count):
            noise().save(tmp_path / "train" / label / f"{i}.png")
    drawn = replay_items(tmp_path, 9, seed=1)
    assert Counter(item.label for item in drawn) == {"everything_else": 5, "tulips": 4}  # not 8 to 1
    assert replay_items(tmp_path, 9, seed=1) == drawn
