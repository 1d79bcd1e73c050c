"""`deep-emotion demo-data`: writes what it says, says where, and refuses what it cannot do."""
from click.testing import CliRunner

from deep_emotion.cli import main


def test_demo_data_writes_the_chosen_formats_and_reports_counts_and_paths(tmp_path):
    out = tmp_path / "root"
    result = CliRunner().invoke(main, ["demo-data", "--out", str(out), "--n", "50", "--seed", "3",
                                       "--formats", "fer2013,ckplus"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["CK+48", "SYNTHETIC_DEMO_DATA.txt", "fer2013.csv"]
    assert f"fer2013: 50 images -> {out / 'fer2013.csv'}" in result.output
    assert f"ckplus: 42 images -> {out / 'CK+48'}" in result.output  # 14 sequences x 3 frames
    assert "Training     angry 5  disgust 1  fear 6  happy 10  sad 7  surprise 4  neutral 7" in result.output
    assert "contempt 3" in result.output
    assert len((out / "fer2013.csv").read_text().splitlines()) == 51


def test_demo_data_rejects_unknown_formats_and_tiny_n(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["demo-data", "--out", str(tmp_path / "x"), "--formats", "fer2013,cifar"])
    assert result.exit_code == 2 and "cifar" in result.output and "choose from" in result.output
    result = runner.invoke(main, ["demo-data", "--out", str(tmp_path / "x"), "--n", "3"])
    assert result.exit_code == 2 and "--n" in result.output
    assert not (tmp_path / "x").exists()
