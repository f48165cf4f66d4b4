"""Sans-IO chat rooms: roles, message rules, room modes and moderation decisions.

A :class:`~kitch.chat.room.Room` never touches a socket, a clock or the database: the caller
passes ``now`` (wall-clock seconds) and what it looked up, and the room answers with events
(frames to broadcast, a reply to the caller, storage actions). ``kitch/api/chat.py`` is the
asyncio glue.
"""

from kitch.chat.room import (
    Broadcast,
    Chatter,
    Event,
    Kick,
    Message,
    Reply,
    Role,
    Room,
    RoomState,
    Store,
    message_data,
    normalise_text,
)

__all__ = [
    "Broadcast",
    "Chatter",
    "Event",
    "Kick",
    "Message",
    "Reply",
    "Role",
    "Room",
    "RoomState",
    "Store",
    "message_data",
    "normalise_text",
]
