"""Specifications for the review loop's feedback set (`io.feedback`) and `nsfw-mobilenet review`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from image_corpus import noise

from nsfw_mobilenet import cli
from nsfw_mobilenet.core.exit_codes import EXIT_OK, EXIT_USAGE
from nsfw_mobilenet.io import feedback

FIELDS = ["path", "kind", "time_s", "label", "unsafe_probability", "decision", "error", "verdict"]


def scan_csv(folder: Path, rows: list[dict]) -> Path:
    """A scan's CSV output in `folder` with a reviewer's verdict column, its paths relative to `folder`."""
    path = folder / "scan.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows({field: row.get(field, "") for field in FIELDS} for row in rows)
    return path


def photo(folder: Path, name: str, seed: int = 0) -> str:
    noise(size=(40 + seed, 30)).save(folder / name)
    return name


def test_verdicts_become_feedback_with_content_hash_and_the_models_score_and_empty_ones_are_skipped(tmp_path):
    rows = [{"path": photo(tmp_path, "a.png"), "kind": "image", "unsafe_probability": "0.91", "decision": "unsafe",
             "verdict": "Safe"},
            {"path": photo(tmp_path, "b.png", 1), "kind": "image", "unsafe_probability": "0.2", "decision": "safe"}]
    [item] = feedback.reviewed(rows, tmp_path / "scan.csv", tmp_path)
    assert (item.verdict, item.unsafe_probability, item.decision) == ("safe", 0.91, "unsafe")
    assert item.sha256 == feedback.content_hash(tmp_path / "a.png") and Path(item.path).is_absolute()


@pytest.mark.parametrize("row, problem", [
    ({"kind": "image", "verdict": "maybe"}, "verdict 'maybe'; write one of safe, unsafe"),
    ({"kind": "video", "verdict": "unsafe"}, "a verdict on a video row"),
    ({"kind": "image", "time_s": "1.5", "verdict": "unsafe"}, "only single images"),
    ({"kind": "image", "error": "truncated", "verdict": "safe"}, "a verdict on a image row"),
])
def test_a_verdict_feedback_cannot_use_is_an_error_naming_the_file_and_row(tmp_path, row, problem):
    row = {"path": photo(tmp_path, "a.png"), **row}
    with pytest.raises(feedback.BadReview, match=problem) as raised:
        feedback.reviewed([row], tmp_path / "scan.csv", tmp_path)
    assert str(raised.value).startswith(f"{tmp_path / 'scan.csv'}: row 2: ")


def test_a_verdict_on_a_file_that_is_gone_says_where_it_was_looked_for(tmp_path):
    with pytest.raises(feedback.BadReview, match="gone.png: no such image"):
        feedback.reviewed([{"path": "gone.png", "kind": "image", "verdict": "safe"}], tmp_path / "s.csv", tmp_path)


def test_a_newer_verdict_on_the_same_image_replaces_the_older_and_the_set_round_trips(tmp_path):
    old = feedback.Feedback("/x/a.png", "h1", "safe", 0.9, "unsafe")
    other = feedback.Feedback("/x/b.png", "h2", "unsafe", 0.4, "review")
    renamed = feedback.Feedback("/y/copy_of_a.png", "h1", "unsafe", 0.9, "unsafe")
    kept = feedback.merged([old, other], [renamed])
    assert kept == [renamed, other]
    assert feedback.load_feedback(feedback.save_feedback(kept, tmp_path / "f.jsonl")) == kept


def test_review_reads_csv_and_json_lines_and_adds_to_the_feedback_set(tmp_path, capsys):
    csv_file = scan_csv(tmp_path, [{"path": photo(tmp_path, "a.png"), "kind": "image", "unsafe_probability": "0.8",
                                    "decision": "unsafe", "verdict": "safe"}])
    jsonl = tmp_path / "scan.jsonl"
    jsonl.write_text(json.dumps({"path": photo(tmp_path, "b.png", 1), "kind": "image", "unsafe_probability": 0.6,
                                 "decision": "review", "verdict": "unsafe"}) + "\n")
    assert cli.main(["review", str(csv_file), str(jsonl), "--feedback", str(tmp_path / "f.jsonl"),
                     "--root", str(tmp_path)]) == EXIT_OK
    assert capsys.readouterr().out.startswith("2 verdicts (1 safe, 1 unsafe; 1 overrule an automatic decision)")
    assert [item.verdict for item in feedback.load_feedback(tmp_path / "f.jsonl")] == ["safe", "unsafe"]


def test_review_with_a_bad_verdict_writes_nothing_and_exits_2_in_one_line(tmp_path, capsys):
    csv_file = scan_csv(tmp_path, [{"path": photo(tmp_path, "a.png"), "kind": "image", "verdict": "nsfw"}])
    assert cli.main(["review", str(csv_file), "--feedback", str(tmp_path / "f.jsonl"), "--root",
                     str(tmp_path)]) == EXIT_USAGE
    assert capsys.readouterr().err.count("\n") == 1 and not (tmp_path / "f.jsonl").exists()
