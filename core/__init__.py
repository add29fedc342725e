"""Likely's core: data, predictions, segments and campaigns. Never imports Streamlit."""
