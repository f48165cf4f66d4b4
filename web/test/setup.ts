// No test opens a real connection: the chat and events sockets get the fake.
import { FakeWebSocket } from "./fakeSocket";

globalThis.WebSocket = FakeWebSocket as unknown as typeof WebSocket;
