import streamlit as st

st.title("Predictions")
st.info("Coming soon.")
