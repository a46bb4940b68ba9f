/** An error for the user, announced by screen readers; nothing when there is none. */
export function ErrorLine(props: { error?: string }) {
  if (!props.error) return null;
  return (
    <p role="alert" class="error">
      {props.error}
    </p>
  );
}
