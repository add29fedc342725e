import streamlit as st

st.title("Campaigns")
st.info("Coming soon.")
