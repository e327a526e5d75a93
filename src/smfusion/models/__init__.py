"""smfusion.models"""
