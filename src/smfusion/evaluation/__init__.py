"""smfusion.evaluation"""
