/**
 * The relay's operations: one typed function per action, shared by every front end (the
 * SSH command line, the local CLI, and the HTTP API of the console). Run them with `perform`.
 */
export { assertSomeoneManagesAccess, authorize, LOCAL_ROLE, perform, subjectOf, userSubject, type Operation, type OperationContext } from './operation.ts';
export { approveDevice, labelDevice, labelDeviceProblems, listDevices, listDevicesProblems, removeDevice, revokeDevice, showDevice, visibleDevices, type DeviceChange, type DeviceDetail, type DeviceView, type LabelDeviceInput, type ListDevicesInput } from './devices.ts';
export { createToken, createTokenProblems, listTokens, revokeToken, type CreatedToken, type CreateTokenInput, type TokenState, type TokenView } from './tokens.ts';
export { addUser, addUserKey, listUsers, removeUser, removeUserKey, setUserRoles, type AddUserInput, type UserView } from './users.ts';
export { addRole, editRole, listRoles, normalizeRole, removeRole, roleNameProblem, type RoleInput, type RoleView } from './roles.ts';
export { auditView, exportAudit, readAudit, readAuditProblems, verifyAudit, type AuditView, type ReadAuditInput } from './audit.ts';
export { sshConfig, type SshConfigInput } from './ssh-config.ts';
export { whoami, type WhoamiResult } from './whoami.ts';
export { getRecording, listRecordings, recordingView, showRecording, type ListRecordingsInput, type RecordingView } from './recordings.ts';
export { createLoginLink, secretHash, type LoginLink, type LoginLinkInput } from './login.ts';
export { listSessions, listSessionsProblems, type ListSessionsInput, type SessionView } from './sessions.ts';
