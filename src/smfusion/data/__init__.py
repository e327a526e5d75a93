"""smfusion.data"""
