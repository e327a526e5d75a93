"""smfusion.training"""
