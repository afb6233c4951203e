'use strict'
// The local stack's DynamoDB engine: dynalite's own command line (node server.js --port N --path DIR ...),
// with one fix. dynalite 4.0.0 reads Scan and Query results through LevelDB iterators that it never closes:
// its streams call iterator.return(), which abstract-level iterators lack, so each Scan or Query keeps an
// open LevelDB iterator (and the memory it pins) for the life of the process. Giving the iterators a
// return() that closes them makes the streams release them when they end or are cut short at Limit.
const { AbstractIterator, AbstractKeyIterator, AbstractValueIterator } = require('abstract-level')

for (const Iterator of [AbstractIterator, AbstractKeyIterator, AbstractValueIterator]) {
  if (!Iterator.prototype.return) {
    Iterator.prototype.return = function () {
      return this.close()
    }
  }
}

require('dynalite/cli.js')
