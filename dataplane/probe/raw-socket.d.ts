// The parts of `raw-socket` we use (it ships no types).
declare module 'raw-socket' {
  import { EventEmitter } from 'node:events';
  export interface RawSocket extends EventEmitter {
    send(buffer: Buffer, offset: number, length: number, address: string, afterCallback: (error?: Error, bytes?: number) => void): void;
    send(buffer: Buffer, offset: number, length: number, address: string, beforeCallback: () => void, afterCallback: (error?: Error, bytes?: number) => void): void;
    setOption(level: number, option: number, value: number | Buffer, length?: number): void;
    close(): void;
    on(event: 'message', listener: (buffer: Buffer, source: string) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: 'close', listener: () => void): this;
  }
  export const Protocol: { ICMP: number; ICMPv6: number; NONE: number };
  export const AddressFamily: { IPv4: number; IPv6: number };
  export const SocketLevel: { IPPROTO_IP: number; SOL_SOCKET: number; IPPROTO_IPV6: number };
  export const SocketOption: Record<string, number>;
  export function createSocket(options: { protocol?: number; addressFamily?: number; bufferSize?: number; generateChecksums?: boolean; checksumOffset?: number }): RawSocket;
  const raw: { createSocket: typeof createSocket; Protocol: typeof Protocol; AddressFamily: typeof AddressFamily; SocketLevel: typeof SocketLevel; SocketOption: typeof SocketOption };
  export default raw;
}
