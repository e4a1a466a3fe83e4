// Port helpers shared by `npm start`, the bench and the tests.
import { createServer } from "node:net";

/** True when nothing listens on the port: the OS lets us bind it on 127.0.0.1 (as Azurite and the emulators do). */
export function portIsFree(port: number, host = "127.0.0.1"): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
