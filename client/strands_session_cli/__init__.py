"""`strands-cli`: scaffold Strands agent projects and run the session backend for them.

`main.cli` is the click group; `scaffold` renders new projects from `templates/`, `health`
checks a backend's readiness, `engine` drives Docker Compose and `local` runs the backend as a
local background process, found by `locate` (this package ships in the client distribution,
apart from the server).
"""
