"""Reading each source's payloads (pure: parsed body in, plain facts out; no ORM, no HTTP).

``describe`` answers the inbox's questions about a request (the source's event id, its type and what
it is about); the other functions turn a payload into the facts the services act on.
"""
