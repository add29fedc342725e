import streamlit as st

st.title("Segments")
st.info("Coming soon.")
