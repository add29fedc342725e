"""Team access UI shared by the screens: who is signed in, members, the audit log (not pages themselves)."""
