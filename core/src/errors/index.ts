export { errorCodes, type NgrokdErrorCode } from './codes.js'
export { NgrokdError, SyscallError, PermissionError, isNgrokdError, formatError, type NgrokdErrorOptions } from './ngrokd-error.js'
