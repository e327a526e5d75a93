"""Static HTML report of a run, built from its files only (see runfiles for the contract)."""

from smfusion.evaluation.htmlreport.build import SECTION_IDS, build_report

__all__ = ["build_report", "SECTION_IDS"]
