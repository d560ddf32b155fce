export class SseClient extends EventTarget {}
