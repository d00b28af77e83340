"""The analysis section of the demo report: CAM pictures, t-SNE plots and silhouette table."""
from stpn.analysis import demo_section
from stpn.demo.report import write_report
from tests.analysis_tiny import tiny_run, tiny_videos


def test_the_demo_report_gains_cams_and_tsne(tmp_path, monkeypatch):
    monkeypatch.setattr(demo_section, "SCORE_THRESH", 0.1)  # untrained models score about 1/4
    runs = {"per-frame": tiny_run(tmp_path / "per-frame", None), "STPN": tiny_run(tmp_path / "STPN", "relation")}
    section = demo_section.analysis_section(runs, tiny_videos(), frames=1, videos=2)
    assert "EigenCAM on degraded frames" in section and "t-SNE and silhouette" in section
    assert section.count("<img") == 1 + 2  # one CAM picture, one t-SNE figure per model
    assert section.count("<tr><td>per-frame</td>") == 1 and section.count("<tr><td>STPN</td>") == 1
    report = write_report(tmp_path / "report.html", "t", "<p>table</p>", {"a": [1.0, 0.5]}, {"a": {"noise": 0.5}},
                          [], [], sections=section)
    assert section in report.read_text()
