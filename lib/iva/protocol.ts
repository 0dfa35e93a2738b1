/**
 * IVA's wire vocabulary, one home for it (docs/iva-api.md): the API version, each
 * kind's action and field names, and the multipart field that carries the JSON. The
 * client, the direct API (which speaks IVA's format to its own callers) and the CLI read
 * these names from here. Data only (one type import), so anything may depend on it.
 */
import type { MediaKind } from './types';

/** The one API version iva-bridge speaks (the `Version` query parameter). */
export const IVA_VERSION = '2022-05-13';

/** The multipart field holding the request JSON. */
export const REQUEST_FIELD = 'Request';

/** Per kind: the action, the file part's field, the request's media key and the answer's data id key. */
export const KIND_PROTOCOL = {
  image: { action: 'AddAsyncTaskImageData', fileField: 'ImageFile', mediaKey: 'Image', idKey: 'ImageID' },
  video: { action: 'AddAsyncTaskVideoData', fileField: 'VideoFile', mediaKey: 'Video', idKey: 'VideoID' },
} as const satisfies Record<MediaKind, unknown>;

export type SubmitAction = (typeof KIND_PROTOCOL)[MediaKind]['action'];
export type FileField = (typeof KIND_PROTOCOL)[MediaKind]['fileField'];
export type MediaKey = (typeof KIND_PROTOCOL)[MediaKind]['mediaKey'];
export type DataIdKey = (typeof KIND_PROTOCOL)[MediaKind]['idKey'];

/** The kind an action submits, or undefined for any other action. */
export function kindOfAction(action: string): MediaKind | undefined {
  return (Object.keys(KIND_PROTOCOL) as MediaKind[]).find((k) => KIND_PROTOCOL[k].action === action);
}
