const { DatabaseSync } = process.getBuiltinModule('node:sqlite');
const open = () => { const db = new DatabaseSync('./y.lock'); db.exec('PRAGMA busy_timeout=0; PRAGMA journal_mode=OFF'); db.exec('BEGIN EXCLUSIVE'); return db; };
const a = open();
try { open(); console.log('second in-process: locked (BAD)'); } catch (e) { console.log('second in-process refused:', e.message); }
// a third connection that only opens and closes must not drop a's lock
const c = new DatabaseSync('./y.lock'); c.close();
try { open(); console.log('after close: locked (BAD)'); } catch (e) { console.log('after close still refused:', e.message); }
a.exec('ROLLBACK'); a.close();
open(); console.log('after release: acquired');
