"""The example app's tests: replace them with your app's (README "Make it yours")."""
