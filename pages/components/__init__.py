"""Custom Streamlit components (v2, inline HTML/CSS/JS, no build step) used by the pages."""
